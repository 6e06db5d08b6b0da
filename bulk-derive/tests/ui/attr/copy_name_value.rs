use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy = "users"]
struct User {
    id: i64,
}

fn main() {}
