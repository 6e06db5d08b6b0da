use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(key)]
    #[copy(key)]
    id: i64,
}

fn main() {}
