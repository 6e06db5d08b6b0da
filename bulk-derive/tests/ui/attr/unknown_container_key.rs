use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(schema = "app")]
struct User {
    id: i64,
}

fn main() {}
