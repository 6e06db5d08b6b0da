use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Empty {}

fn main() {}
