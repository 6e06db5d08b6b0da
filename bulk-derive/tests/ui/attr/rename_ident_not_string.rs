use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(rename = user_id)]
    id: i64,
}

fn main() {}
