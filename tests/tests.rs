mod decode;
mod decode_prop;
