import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { ACCESS_TOKEN_HEADER, REQUEST_AUTH_HEADER } from '../protocol/constants.js';

export const OPENAPI_UI_PATH = 'api/docs';
export const OPENAPI_JSON_PATH = 'api/docs-json';

/**
 * The OpenAPI description, generated from the controllers and DTO classes, public at /api/docs-json,
 * with Swagger UI at /api/docs (served from the swagger-ui-dist package, no CDN). The description is
 * not secret; it holds no example token, and the UI keeps no credential across page loads.
 */
export function setupOpenApi(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('DCX')
    .setDescription('Confirmed digital-contents delivery: contents, .dcx bundles, deliveries and their audit trail.')
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'the admin token (ADMIN_TOKEN or DATA_DIR/admin-token)' }, 'admin')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN: GET /metrics only' }, 'metrics')
    .addApiKey(
      {
        type: 'apiKey',
        in: 'header',
        name: ACCESS_TOKEN_HEADER,
        description: 'access token of a token-access content (or the `access` query parameter)',
      },
      'access-token',
    )
    // Named by the inbox routes (@ApiSecurity('dcx-auth')): a scheme must exist for every name a route uses.
    .addApiKey(
      {
        type: 'apiKey',
        in: 'header',
        name: REQUEST_AUTH_HEADER,
        description: 'a request signed by an enrolled installation: DCX-Auth with DCX-Client-Key (src/protocol/request-auth.ts)',
      },
      'dcx-auth',
    )
    .build();
  SwaggerModule.setup(OPENAPI_UI_PATH, app, () => SwaggerModule.createDocument(app, config), {
    jsonDocumentUrl: OPENAPI_JSON_PATH,
    raw: ['json'],
    customSiteTitle: 'DCX API',
    swaggerOptions: { persistAuthorization: false },
  });
}
