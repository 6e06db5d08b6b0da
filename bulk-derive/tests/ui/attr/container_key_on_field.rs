use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(table = "users")]
    id: i64,
}

fn main() {}
