//! A projection of one kind of stream into a table of its own (directory services, tasks): the
//! bookkeeping every such projection shares, written once. `stream_table!(Projection, NAME,
//! "table", Event)` implements [`crate::runner::Projection`] for a type with an inherent
//! `apply_event(&self, tx, event, decoded)`: it reads only the events of `Event`'s stream type
//! (`DomainEvent::STREAM`), decodes each with the stream's encoding and hands it to
//! `apply_event`; a reset empties the table. (A macro, not a blanket impl: the caseload's
//! tables already have one.)

/// See the module.
macro_rules! stream_table {
    ($projection:ty, $name:expr, $table:literal, $event:ty) => {
        #[async_trait::async_trait]
        impl $crate::runner::Projection for $projection {
            fn name(&self) -> &str {
                $name
            }

            async fn reset(
                &self,
                tx: &tokio_postgres::Transaction<'_>,
            ) -> Result<(), $crate::runner::ProjectionError> {
                tx.batch_execute(concat!("DELETE FROM ", $table)).await?;
                Ok(())
            }

            async fn apply_decoded(
                &self,
                tx: &tokio_postgres::Transaction<'_>,
                batch: &$crate::runner::Batch<'_>,
            ) -> Result<(), $crate::runner::ProjectionError> {
                use domain::DomainEvent as _;
                for event in batch
                    .events
                    .iter()
                    .filter(|e| e.stream_type == <$event as domain::DomainEvent>::STREAM)
                {
                    let decoded = <$event>::decode(
                        &event.event_type,
                        event.schema_version,
                        event.payload.clone(),
                    )
                    .map_err(|e| $crate::runner::ProjectionError::Corrupt(e.to_string()))?;
                    self.apply_event(tx, event, &decoded).await?;
                }
                Ok(())
            }
        }
    };
}
pub(crate) use stream_table;
