use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy]
    id: i64,
}

fn main() {}
