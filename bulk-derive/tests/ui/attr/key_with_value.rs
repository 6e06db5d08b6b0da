use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(key = true)]
    id: i64,
}

fn main() {}
