use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(key)]
    #[copy(skip)]
    cached: i64,
}

fn main() {}
