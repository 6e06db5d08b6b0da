use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(try_from = "String")]
    id: u64,
}

fn main() {}
