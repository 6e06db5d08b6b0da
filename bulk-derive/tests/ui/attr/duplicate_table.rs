use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(table = "users")]
#[copy(table = "people")]
struct User {
    id: i64,
}

fn main() {}
