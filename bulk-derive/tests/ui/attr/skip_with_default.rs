use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(skip, default)]
    cached: String,
}

fn main() {}
