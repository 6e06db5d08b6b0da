use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(table = "")]
struct User {
    id: i64,
}

fn main() {}
