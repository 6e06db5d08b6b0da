use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Wrapper<T> {
    value: T,
}

struct Money(u64);

fn table<T: CopyRow>() -> &'static str {
    pgbulk::table_of::<T>()
}

fn main() {
    table::<Wrapper<Money>>();
}
