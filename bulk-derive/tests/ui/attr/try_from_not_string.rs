use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(try_from = i64)]
    id: u64,
}

fn main() {}
