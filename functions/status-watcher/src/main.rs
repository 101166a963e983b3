//! Cold start (configuration, clients, intent) once, then one event per invocation.

mod handler;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    tagwatch_lambda::runtime::run(
        handler::FUNCTION,
        |ports, intent, config, inv, event| async move {
            handler::handle(ports, intent, config, &inv, &event).await
        },
    )
    .await
}
