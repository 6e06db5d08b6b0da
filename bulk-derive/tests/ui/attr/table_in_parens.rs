use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(table("users"))]
struct User {
    id: i64,
}

fn main() {}
