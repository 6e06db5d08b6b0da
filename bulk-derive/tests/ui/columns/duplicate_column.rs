use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(rename = "id")]
    user_id: i64,
}

fn main() {}
