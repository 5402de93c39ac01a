/**
 * The demo API's OpenAPI document, written by `warden dev` next to its sidecar.yaml: the sidecar
 * takes its routes, scopes, rate limits and request validation from it.
 */
export const DEMO_OPENAPI_YAML = `# Written by \`warden dev\`: the demo API as the sidecar enforces it (routes, scopes from
# \`security\`, x-warden-rate-limit, request validation). Edit it and send SIGHUP to reload.
openapi: 3.1.0
info: { title: Warden demo orders API, version: 1.0.0 }
security:
  - oauth: [orders:read]
  - oauth: [orders:write]
paths:
  /api/hello:
    get:
      operationId: hello
      responses: { '200': { description: a greeting and what the backend received } }
  /api/echo:
    post:
      operationId: echo
      requestBody:
        content:
          application/json: { schema: { type: object } }
      responses: { '200': { description: what the backend received } }
  /api/orders:
    get:
      operationId: listOrders
      parameters:
        - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 100 } }
        - { name: status, in: query, schema: { type: string, enum: [open, shipped] } }
      responses: { '200': { description: orders } }
    post:
      operationId: createOrder
      security:
        - oauth: [orders:write]
      x-warden-rate-limit: { rate: 5, per_seconds: 60 }
      requestBody:
        required: true
        content:
          application/json: { schema: { $ref: '#/components/schemas/Order' } }
      responses: { '200': { description: created } }
  /api/orders/{orderId}/attachments:
    post:
      operationId: uploadAttachment
      security:
        - oauth: [orders:write]
      parameters:
        - { name: orderId, in: path, required: true, schema: { type: integer, minimum: 1 } }
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema: { type: object, properties: { file: { type: string, format: binary } } }
      responses: { '200': { description: stored } }
  /public/info:
    get:
      operationId: publicInfo
      security: []
      responses: { '200': { description: public information } }
  /healthz:
    get:
      operationId: health
      security: []
      responses: { '200': { description: ok } }
  /admin/stats:
    get:
      operationId: adminStats
      security:
        - oauth: [orders:admin]
      responses: { '200': { description: statistics } }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: /token
          scopes: { orders:read: read orders, orders:write: create orders, orders:admin: administer }
  schemas:
    Order:
      type: object
      additionalProperties: false
      required: [item, quantity]
      properties:
        item: { type: string, minLength: 1, maxLength: 100 }
        quantity: { type: integer, minimum: 1, maximum: 100 }
        note: { type: string, maxLength: 500 }
`;
