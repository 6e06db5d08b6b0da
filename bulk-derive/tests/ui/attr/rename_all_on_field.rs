use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(rename_all = "camelCase")]
    user_id: i64,
}

fn main() {}
