//! TOSCA recipes: parsing, planning against the model IR, and custom type generation
