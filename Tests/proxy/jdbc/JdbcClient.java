// A JDBC client through Palisade: a connection pool's check (Connection.isValid, which runs empty
// text), a prepared query, a denied statement, and the connection still usable after it.
// Run as: java -cp /usr/share/java/postgresql.jar JdbcClient.java URL USER PASSWORD
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

public class JdbcClient {
    public static void main(String[] args) throws Exception {
        try (Connection connection = DriverManager.getConnection(args[0], args[1], args[2])) {
            check(connection.isValid(5), "isValid");
            try (PreparedStatement statement = connection.prepareStatement("SELECT count(*) FROM orders WHERE id > ?")) {
                statement.setInt(1, 0);
                try (ResultSet rows = statement.executeQuery()) {
                    check(rows.next(), "a row");
                    System.out.println("count " + rows.getLong(1));
                }
            }
            try (Statement statement = connection.createStatement()) {
                statement.executeUpdate("DELETE FROM orders");
                throw new AssertionError("DELETE was not refused");
            } catch (SQLException refused) {
                System.out.println("refused " + refused.getSQLState() + " " + refused.getMessage().split("\n")[0]);
            }
            check(connection.isValid(5), "isValid after a refusal");
            connection.setAutoCommit(false);
            try (Statement statement = connection.createStatement(); ResultSet rows = statement.executeQuery("SELECT 42")) {
                check(rows.next() && rows.getInt(1) == 42, "a query in a transaction");
            }
            connection.commit();
            System.out.println("ok");
        }
    }

    static void check(boolean condition, String what) {
        if (!condition) throw new AssertionError(what);
    }
}
