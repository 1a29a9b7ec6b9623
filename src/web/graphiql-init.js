// Starts GraphiQL on the page LLMOP serves at GET /graphql. Loaded from our own server (no CDN),
// as a file rather than inline so the page's Content-Security-Policy can forbid inline scripts.
(function startGraphiQL() {
  var settings = JSON.parse(document.getElementById('llmop-graphiql-settings').textContent);
  var fetcher = GraphiQL.createFetcher({ url: settings.endpoint });
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
