// pgjdbc executeBatch through pggat: long batches inside a transaction make
// pgjdbc read results part-way through writing (its flushIfDeadlockRisk), so
// the pooler sees a client that writes thousands of messages before it
// reads. Every entry must succeed and every row arrive. Run as a source
// file: java -cp postgresql.jar JdbcBatch.java (PGGAT_JDBC_URL, PGGAT_USER,
// PGGAT_PASSWORD); prints OK, exits 1 on any wrong result.
import java.sql.*;

public class JdbcBatch {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static void batch(Connection c, String table, int n, int width, boolean autocommit) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + table);
            s.execute("CREATE TABLE " + table + " (id int PRIMARY KEY, v text)");
        }
        c.setAutoCommit(autocommit);
        String pad = "x".repeat(width);
        try (PreparedStatement p = c.prepareStatement("INSERT INTO " + table + " VALUES (?, ?)")) {
            for (int i = 0; i < n; i++) {
                p.setInt(1, i);
                p.setString(2, i + pad);
                p.addBatch();
            }
            int[] r = p.executeBatch();
            check(r.length == n, table + ": " + r.length + " results for " + n + " entries");
            for (int i = 0; i < n; i++) {
                check(r[i] == 1 || r[i] == Statement.SUCCESS_NO_INFO, table + ": entry " + i + " gave " + r[i]);
            }
        }
        if (!autocommit) {
            c.commit();
        }
        c.setAutoCommit(true);
        try (Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT count(*), sum(id), min(length(v)) FROM " + table)) {
            rs.next();
            check(rs.getLong(1) == n, table + ": " + rs.getLong(1) + " rows, expected " + n);
            check(rs.getLong(2) == (long) n * (n - 1) / 2, table + ": ids are not 0.." + (n - 1));
            check(rs.getInt(3) >= width + 1, table + ": a value was cut");
        }
        try (Statement s = c.createStatement()) {
            s.execute("DROP TABLE " + table);
        }
    }

    public static void main(String[] args) throws Exception {
        String url = System.getenv("PGGAT_JDBC_URL");
        String user = System.getenv("PGGAT_USER");
        String password = System.getenv("PGGAT_PASSWORD");
        try (Connection c = DriverManager.getConnection(url, user, password)) {
            for (int n : new int[] {1_000, 10_000, 100_000}) {
                batch(c, "jdbc_batch_" + n, n, 10, false);
            }
            // Wider rows: the responses outgrow socket buffers sooner.
            batch(c, "jdbc_batch_wide", 20_000, 2_000, false);
            batch(c, "jdbc_batch_autocommit", 10_000, 10, true);
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT 1")) {
                check(rs.next() && rs.getInt(1) == 1, "the connection still answers");
            }
        }
        System.out.println("OK");
    }
}
