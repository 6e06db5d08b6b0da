use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(json)]
    #[copy(json)]
    settings: String,
}

fn main() {}
