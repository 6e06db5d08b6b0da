use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(rename_all = "camelCase", rename_all = "PascalCase")]
struct User {
    user_id: i64,
}

fn main() {}
