use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(skip, to_sql)]
    cached: i64,
}

fn main() {}
