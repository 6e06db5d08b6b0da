use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(rename_all = "UPPERCASE")]
struct User {
    id: i64,
    #[copy(rename = "ID")]
    other_id: i64,
}

fn main() {}
