use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Address {
    street: String,
}

#[derive(CopyRow)]
struct User<T> {
    id: T,
    #[copy(flatten)]
    address: Address,
}

fn main() {}
