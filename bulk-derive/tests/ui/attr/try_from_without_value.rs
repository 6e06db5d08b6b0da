use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(try_from)]
    id: u64,
}

fn main() {}
