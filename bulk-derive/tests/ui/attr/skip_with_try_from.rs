use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(skip, try_from = "i64")]
    cached: u64,
}

fn main() {}
