use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(skip, rename = "cache")]
    cached: i64,
}

fn main() {}
