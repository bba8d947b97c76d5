CREATE TABLE post (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    timestamp TEXT NOT NULL DEFAULT (datetime('now'))
);
