//! `copy_out_each` / `copy_out_query_each`: rows borrowing their text and bytes from the
//! received data, handed to a closure — on every async client (`on_every_client!`).

use pgbulk::{BulkExt, CopyRow, ErrorKind};

/// The owned row, read the usual way, to compare with.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "notes")]
struct Note {
    id: i64,
    title: String,
    body: Option<String>,
    blob: Vec<u8>,
    maybe_blob: Option<Vec<u8>>,
    tags: Vec<Option<String>>,
    #[copy(skip)]
    cached: u32,
}

/// The same columns, borrowed where a field can borrow.
#[derive(CopyRow, Debug)]
#[copy(table = "notes")]
struct NoteRef<'r> {
    id: i64,
    title: &'r str,
    body: Option<&'r str>,
    blob: &'r [u8],
    maybe_blob: Option<&'r [u8]>,
    tags: Vec<Option<String>>,
    #[copy(skip)]
    cached: u32,
}

impl NoteRef<'_> {
    fn to_owned(&self) -> Note {
        Note {
            id: self.id,
            title: self.title.to_owned(),
            body: self.body.map(str::to_owned),
            blob: self.blob.to_vec(),
            maybe_blob: self.maybe_blob.map(<[u8]>::to_vec),
            tags: self.tags.clone(),
            cached: self.cached,
        }
    }
}

/// A `#[copy(default)]` field the query may leave out, and a renamed column.
#[derive(CopyRow, Debug)]
struct Titled<'r> {
    #[copy(rename = "title")]
    name: &'r str,
    #[copy(default)]
    body: Option<&'r str>,
}

/// Both fields of the wrong type: text for an `int8`, bytes for a `varchar`.
#[derive(CopyRow)]
#[copy(table = "notes")]
struct Wrong<'r> {
    id: &'r str,
    title: &'r [u8],
}

const NOTES: &str = "CREATE TABLE notes (id int8, title varchar(40), body text, blob bytea, \
     maybe_blob bytea, tags text[]);
     INSERT INTO notes SELECT g, 'title ' || g || ' é', CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('b', g % 50) END,
         decode(lpad(to_hex(g), 8, '0'), 'hex'), CASE WHEN g % 2 = 0 THEN NULL ELSE '\\x00ff'::bytea END,
         ARRAY['t' || g % 7, NULL]
     FROM generate_series(1, 20000) g;";

on_every_client! {
    async fn borrowed_rows_equal_owned_rows(db, conn) {
        db.client().batch_execute(NOTES).await.unwrap();
        let owned = conn.bulk().copy_out::<Note>().collect_vec().await.unwrap();
        assert_eq!(owned.len(), 20_000);
        let mut seen = Vec::new();
        let rows = conn
            .bulk()
            .copy_out_each::<NoteRef<'_>>(|row| seen.push(row.to_owned()))
            .await
            .unwrap();
        assert_eq!(rows, 20_000);
        assert_eq!(seen, owned);
        // An owned row type goes through the same call.
        let mut again = Vec::new();
        let rows = conn
            .bulk()
            .copy_out_each::<Note>(|row| again.push(row))
            .await
            .unwrap();
        assert_eq!(rows, 20_000);
        assert_eq!(again, owned);
    }

    async fn query_columns_in_any_order_and_defaults(db, conn) {
        db.client().batch_execute(NOTES).await.unwrap();
        // Reordered, with a column no field wants: the general (non-identity) path.
        let mut seen = Vec::new();
        let rows = conn
            .bulk()
            .copy_out_query_each::<NoteRef<'_>>(
                "SELECT tags, 1 AS unused, maybe_blob, blob, body, title || '!' AS title, id \
                 FROM notes WHERE id <= 4 ORDER BY id",
                |row| seen.push(row.to_owned()),
            )
            .await
            .unwrap();
        assert_eq!(rows, 4);
        assert_eq!(seen.iter().map(|n| n.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(seen[0].title, "title 1 é!");
        assert_eq!(seen[2].body, None);
        assert_eq!(seen[1].maybe_blob, None);
        assert_eq!(seen[0].maybe_blob.as_deref(), Some(&[0, 255][..]));
        assert_eq!(seen[3].blob, [0, 0, 0, 4]);
        // A `#[copy(default)]` field the query leaves out.
        let mut names = Vec::new();
        conn.bulk()
            .copy_out_query_each::<Titled<'_>>("SELECT title FROM notes WHERE id <= 2 ORDER BY id", |row| {
                assert_eq!(row.body, None);
                names.push(row.name.to_owned());
            })
            .await
            .unwrap();
        assert_eq!(names, ["title 1 é", "title 2 é"]);
    }

    async fn a_null_in_a_borrowed_field_names_row_field_and_column(db, conn) {
        db.client().batch_execute(NOTES).await.unwrap();
        execute(&mut conn, "UPDATE notes SET title = NULL WHERE id = 501").await.unwrap();
        let mut handed = 0u64;
        let err = conn
            .bulk()
            .copy_out_query_each::<NoteRef<'_>>("SELECT * FROM notes ORDER BY id", |_| handed += 1)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        assert_eq!(err.row(), Some(500));
        assert_eq!(err.field(), Some("title"));
        assert_eq!(err.column(), Some("title"));
        // The rows before it were handed over, none after.
        assert_eq!(handed, 500);
        after_abandoned_copy(&mut conn, &db).await;
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM notes").await.unwrap(), 20_000);
    }

    async fn a_borrowed_field_of_the_wrong_type_is_a_mismatch_before_reading(db, conn) {
        db.client().batch_execute(NOTES).await.unwrap();
        let mut handed = 0;
        let err = conn
            .bulk()
            .copy_out_each::<Wrong<'_>>(|_| handed += 1)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeMismatch);
        assert_eq!(err.mismatches().len(), 2, "{err}");
        assert_eq!(handed, 0);
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM notes").await.unwrap(), 20_000);
    }
}

#[tokio::test]
async fn blocking_client_reads_borrowed_rows() {
    use pgbulk::sync::BulkExt as _;
    let db = crate::db().await;
    db.client().batch_execute(NOTES).await.unwrap();
    let owned = db
        .client()
        .bulk()
        .copy_out::<Note>()
        .collect_vec()
        .await
        .unwrap();
    let conninfo = db.connection_string();
    // The sync client runs its own runtime: use it off this runtime's thread.
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        let mut seen = Vec::new();
        let rows = client
            .bulk()
            .copy_out_each::<NoteRef<'_>>(|row| seen.push(row.to_owned()))
            .unwrap();
        assert_eq!(rows, 20_000);
        assert_eq!(seen, owned);
        let mut long = 0;
        let rows = client
            .bulk()
            .copy_out_query_each::<Titled<'_>>("SELECT title FROM notes WHERE id > 19990", |row| {
                long += usize::from(row.name.len() > 12);
            })
            .unwrap();
        assert_eq!((rows, long), (10, 10));
        // The client is in step afterwards.
        let n: i64 = client
            .query_one("SELECT count(*) FROM notes", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 20_000);
    })
    .await
    .unwrap();
}
