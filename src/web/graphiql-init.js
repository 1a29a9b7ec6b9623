// Starts GraphiQL on the page LLMOP serves at GET /graphql. Loaded from our own server (no CDN),
// as a file rather than inline so the page's Content-Security-Policy can forbid inline scripts.
(function startGraphiQL() {
  var settings = JSON.parse(document.getElementById('llmop-graphiql-settings').textContent);
  // Subscriptions run over WebSocket (graphql-ws, bundled in GraphiQL) at the same path. A browser cannot
  // set headers on a WebSocket: GraphiQL sends the headers tab as connectionParams, where the key is read.
  var endpoint = new URL(settings.endpoint, window.location.href);
  var subscriptionUrl = (endpoint.protocol === 'https:' ? 'wss://' : 'ws://') + endpoint.host + endpoint.pathname;
  var fetcher = GraphiQL.createFetcher({ url: settings.endpoint, subscriptionUrl: subscriptionUrl });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: settings.exampleDocument,
      defaultHeaders: settings.defaultHeaders,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: settings.defaultHeaders ? 'headers' : false,
    }),
  );
})();
