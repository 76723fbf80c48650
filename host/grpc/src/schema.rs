//! `schema.SchemaService/GetSchema`: the `.proto` files of the models
//! installed now, as XOS's client downloads them on every connect.

use prost_reflect::{DynamicMessage, Value};
use tonic::Status;

use crate::service::Call;

/// `Schemas { protos: [ProtoFile {file_name, proto, descriptor}],
/// swagger_from, yang_from }`, as XOS 4.0.4 answered: flat file names,
/// each importing only files of the answer and well-known types.
pub(crate) fn get_schema(call: &Call) -> Result<DynamicMessage, Status> {
    let output = call.method.output();
    let file = output
        .get_field_by_name("protos")
        .and_then(|f| f.kind().as_message().cloned())
        .ok_or_else(|| Status::internal("schema.Schemas has no `protos`"))?;
    let protos = call
        .served
        .descriptors
        .schema
        .iter()
        .map(|served| {
            let mut proto = DynamicMessage::new(file.clone());
            proto.set_field_by_name("file_name", Value::String(served.file_name.clone()));
            proto.set_field_by_name("proto", Value::String(served.proto.clone()));
            proto.set_field_by_name("descriptor", Value::Bytes(served.descriptor.clone().into()));
            Value::Message(proto)
        })
        .collect();
    let mut schemas = DynamicMessage::new(output);
    schemas.set_field_by_name("protos", Value::List(protos));
    schemas.set_field_by_name("swagger_from", Value::String("xos.proto".into()));
    schemas.set_field_by_name("yang_from", Value::String("xos.proto".into()));
    Ok(schemas)
}
