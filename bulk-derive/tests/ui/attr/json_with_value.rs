use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(json = "jsonb")]
    settings: String,
}

fn main() {}
