use pgbulk::CopyRow;

struct NotToSql;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(to_sql)]
    mood: NotToSql,
}

fn main() {}
