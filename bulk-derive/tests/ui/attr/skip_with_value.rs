use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(skip(always))]
    cached: i64,
}

fn main() {}
