use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(try_from = "not a type")]
    id: u64,
}

fn main() {}
