import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.concurrent.TimeUnit;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import okhttp3.ResponseBody;

/**
 * pinset's OkHttp interop client (Java). Each stdin line "pinner TAB url TAB proxy" is one GET
 * with a fresh OkHttpClient using the exported pinner Pinners.get(pinner); the answer is one line,
 * "status TAB body" or "exception class TAB message".
 */
public final class PinnedClient {
  private PinnedClient() {}

  public static void main(String[] args) throws IOException {
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    System.out.println("READY");
    System.out.flush();
    String line;
    while ((line = in.readLine()) != null) {
      String[] fields = line.split("\t", -1);
      System.out.println(get(fields[0], fields[1], fields[2]));
      System.out.flush();
    }
  }

  static String get(String pinner, String url, String proxy) {
    OkHttpClient.Builder builder =
        new OkHttpClient.Builder()
            .certificatePinner(Pinners.get(pinner))
            // Every name is loopback in the tests, as a hosts file would say: no DNS is asked.
            .dns(host -> Collections.singletonList(InetAddress.getByAddress(host, LOOPBACK)))
            .retryOnConnectionFailure(false)
            .connectTimeout(10, TimeUnit.SECONDS)
            .readTimeout(10, TimeUnit.SECONDS);
    if (proxy.isEmpty()) {
      builder.proxy(Proxy.NO_PROXY);
    } else {
      int colon = proxy.lastIndexOf(':');
      InetSocketAddress address =
          new InetSocketAddress(proxy.substring(0, colon), Integer.parseInt(proxy.substring(colon + 1)));
      builder.proxy(new Proxy(Proxy.Type.HTTP, address));
    }
    OkHttpClient client = builder.build();
    // "Connection: close" so that every proxy sees each connection end.
    Request request = new Request.Builder().url(url).header("Connection", "close").build();
    try (Response response = client.newCall(request).execute()) {
      ResponseBody body = response.body();
      return response.code() + "\t" + (body == null ? "" : body.string().trim());
    } catch (IOException | RuntimeException e) {
      return e.getClass().getName() + "\t" + String.valueOf(e.getMessage()).replace("\n", "\\n");
    } finally {
      client.connectionPool().evictAll();
      client.dispatcher().executorService().shutdown();
    }
  }

  private static final byte[] LOOPBACK = {127, 0, 0, 1};
}
