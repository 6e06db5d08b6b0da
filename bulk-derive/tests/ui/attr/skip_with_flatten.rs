use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(skip, flatten)]
    cached: String,
}

fn main() {}
