use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Wrapper<T> {
    value: T,
}

struct Money(u64);

fn table<T: CopyRow>() -> &'static str {
    T::TABLE
}

fn main() {
    table::<Wrapper<Money>>();
}
