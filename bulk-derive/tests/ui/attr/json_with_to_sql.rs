use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(to_sql, json)]
    settings: String,
}

fn main() {}
