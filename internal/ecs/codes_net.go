package ecs

// Codes of addresses and subnets (Huawei's error table; all 400).
var (
	CodeAddressTaken    = code(ErrInvalid, "Ecs.0010") // nics[].ip_address held by another NIC
	CodeSubnetFull      = code(ErrInvalid, "Ecs.0012") // no free address left in the subnet
	CodeAddressOutside  = code(ErrInvalid, "Ecs.0039") // nics[].ip_address not in the subnet's CIDR
	CodeVPCSubnetDiffer = code(ErrInvalid, "Ecs.0064") // vpcid is not the VPC of a NIC's subnet
)

// CodeGlanceImageNotFound is GET /v2/images/{id} of an unknown image:
// Glance answers 404; the code is ECS's "the image does not exist" (our
// choice; README).
var CodeGlanceImageNotFound = code(ErrNotFound, "Ecs.0031")
