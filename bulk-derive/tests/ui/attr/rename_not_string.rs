use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(rename = 5)]
    id: i64,
}

fn main() {}
