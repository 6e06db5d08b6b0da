use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(json, try_from = "String")]
    settings: String,
}

fn main() {}
