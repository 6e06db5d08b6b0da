use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(skip)]
struct User {
    id: i64,
}

fn main() {}
