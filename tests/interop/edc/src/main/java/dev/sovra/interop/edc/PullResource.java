package dev.sovra.interop.edc;

import jakarta.ws.rs.GET;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.UriInfo;
import org.eclipse.edc.connector.dataplane.spi.iam.DataPlaneAuthorizationService;
import org.eclipse.edc.spi.monitor.Monitor;
import org.eclipse.edc.spi.types.domain.DataAddress;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;

/**
 * GET with an EDR token: authorize the token, then stream the HttpData source's {@code baseUrl} back.
 * The token may come raw (as EDC consumers send it) or as "Bearer &lt;token&gt;".
 */
@Path("/")
public class PullResource {
    private static final String EDC_NS = "https://w3id.org/edc/v0.0.1/ns/";

    private final DataPlaneAuthorizationService authorization;
    private final Monitor monitor;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    PullResource(DataPlaneAuthorizationService authorization, Monitor monitor) {
        this.authorization = authorization;
        this.monitor = monitor;
    }

    @GET
    public Response root(@HeaderParam("Authorization") String token, @Context UriInfo uri) {
        return pull(token, uri);
    }

    @GET
    @Path("{rest:.+}")
    public Response sub(@HeaderParam("Authorization") String token, @Context UriInfo uri) {
        return pull(token, uri);
    }

    private Response pull(String header, UriInfo uri) {
        if (header == null || header.isBlank()) {
            return Response.status(401).entity("missing Authorization header").build();
        }
        var token = header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).trim() : header.trim();
        var request = Map.<String, Object>of("method", "GET", "url", uri.getRequestUri().toString());
        var authorized = authorization.authorize(token, request);
        if (authorized.failed()) {
            monitor.warning("pull refused: " + authorized.getFailureDetail());
            return Response.status(403).entity("token refused: " + authorized.getFailureDetail()).build();
        }
        var baseUrl = property(authorized.getContent(), "baseUrl");
        if (baseUrl == null) {
            return Response.status(500).entity("the source DataAddress has no baseUrl").build();
        }
        try {
            var upstream = http.send(HttpRequest.newBuilder(URI.create(baseUrl)).timeout(Duration.ofSeconds(30)).GET()
                    .build(), HttpResponse.BodyHandlers.ofInputStream());
            var type = upstream.headers().firstValue("Content-Type").orElse("application/octet-stream");
            InputStream body = upstream.body();
            return Response.status(upstream.statusCode()).type(type).entity(body).build();
        } catch (IOException e) {
            return Response.status(502).entity("upstream " + baseUrl + " failed: " + e.getMessage()).build();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Response.status(503).build();
        }
    }

    private static String property(DataAddress address, String name) {
        var value = address.getStringProperty(EDC_NS + name);
        return value != null ? value : address.getStringProperty(name);
    }
}
