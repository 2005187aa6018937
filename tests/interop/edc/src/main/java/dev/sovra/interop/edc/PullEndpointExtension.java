package dev.sovra.interop.edc;

import org.eclipse.edc.connector.dataplane.spi.Endpoint;
import org.eclipse.edc.connector.dataplane.spi.iam.DataPlaneAuthorizationService;
import org.eclipse.edc.connector.dataplane.spi.iam.PublicEndpointGeneratorService;
import org.eclipse.edc.runtime.metamodel.annotation.Extension;
import org.eclipse.edc.runtime.metamodel.annotation.Inject;
import org.eclipse.edc.spi.system.ServiceExtension;
import org.eclipse.edc.spi.system.ServiceExtensionContext;
import org.eclipse.edc.web.spi.WebService;
import org.eclipse.edc.web.spi.configuration.PortMapping;
import org.eclipse.edc.web.spi.configuration.PortMappingRegistry;

/**
 * The consumer-facing end of an HTTP pull for the interop peer.
 *
 * EDC 0.14 no longer ships a public data-plane API (data-plane-public-api-v2 ended at 0.13): a runtime is expected
 * to bring its own. This one is deliberately small: it tells the data plane that HttpData sources can be pulled
 * from {@code sovra.interop.public.url} (so the EDR carries that endpoint and HttpData-PULL is advertised), and
 * serves GET requests there by checking the EDR token with EDC's own DataPlaneAuthorizationService and proxying
 * the asset's {@code baseUrl}.
 */
@Extension(PullEndpointExtension.NAME)
public class PullEndpointExtension implements ServiceExtension {
    public static final String NAME = "Sovra interop pull endpoint";
    static final String CONTEXT = "public";

    @Inject
    private WebService webService;
    @Inject
    private PortMappingRegistry portMappings;
    @Inject
    private PublicEndpointGeneratorService endpointGenerator;
    @Inject
    private DataPlaneAuthorizationService authorization;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public void initialize(ServiceExtensionContext context) {
        var config = context.getConfig();
        var port = config.getInteger("web.http." + CONTEXT + ".port");
        var path = config.getString("web.http." + CONTEXT + ".path", "/public");
        var publicUrl = config.getString("sovra.interop.public.url");
        portMappings.register(new PortMapping(CONTEXT, port, path));
        endpointGenerator.addGeneratorFunction("HttpData", source -> Endpoint.url(publicUrl));
        webService.registerResource(CONTEXT, new PullResource(authorization, context.getMonitor()));
    }
}
