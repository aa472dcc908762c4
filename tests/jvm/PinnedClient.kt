import java.io.IOException
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.Proxy
import java.util.concurrent.TimeUnit
import okhttp3.Dns
import okhttp3.OkHttpClient
import okhttp3.Request

// pinset's OkHttp interop client (Kotlin). Each stdin line "pinner TAB url TAB proxy" is one GET
// with a fresh OkHttpClient using the exported pinner Pinners.get(pinner); the answer is one line,
// "status TAB body" or "exception class TAB message".

private val LOOPBACK = byteArrayOf(127, 0, 0, 1)

fun main() {
    println("READY")
    System.out.flush()
    while (true) {
        val line = readLine() ?: break
        val fields = line.split("\t")
        println(get(fields[0], fields[1], fields[2]))
        System.out.flush()
    }
}

fun get(pinner: String, url: String, proxy: String): String {
    val builder = OkHttpClient.Builder()
        .certificatePinner(Pinners.get(pinner))
        // Every name is loopback in the tests, as a hosts file would say: no DNS is asked.
        .dns(Dns { host -> listOf(InetAddress.getByAddress(host, LOOPBACK)) })
        .retryOnConnectionFailure(false)
        .connectTimeout(10, TimeUnit.SECONDS)
        .readTimeout(10, TimeUnit.SECONDS)
    // Not proxy.isEmpty(): on JDK 15+ Kotlin 1.3 resolves it to a JDK member it warns about.
    if (proxy == "") {
        builder.proxy(Proxy.NO_PROXY)
    } else {
        val colon = proxy.lastIndexOf(':')
        val address = InetSocketAddress(proxy.substring(0, colon), proxy.substring(colon + 1).toInt())
        builder.proxy(Proxy(Proxy.Type.HTTP, address))
    }
    val client = builder.build()
    // "Connection: close" so that every proxy sees each connection end.
    val request = Request.Builder().url(url).header("Connection", "close").build()
    return try {
        client.newCall(request).execute().use { response ->
            "${response.code()}\t${response.body()?.string()?.trim() ?: ""}"
        }
    } catch (e: IOException) {
        "${e.javaClass.name}\t${e.message.toString().replace("\n", "\\n")}"
    } catch (e: RuntimeException) {
        "${e.javaClass.name}\t${e.message.toString().replace("\n", "\\n")}"
    } finally {
        client.connectionPool().evictAll()
        client.dispatcher().executorService().shutdown()
    }
}
