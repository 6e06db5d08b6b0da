use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(flatten(prefix = "home_"))]
    address: i64,
}

fn main() {}
