package sdk

import (
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
	imsmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ims/v2/model"
)

func TestGlanceShowImage(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	id := tn.catalog(t).linuxImage
	img, err := tn.ims.GlanceShowImage(&imsmodel.GlanceShowImageRequest{ImageId: id})
	if err != nil {
		t.Fatalf("GlanceShowImage: %v", err)
	}
	if str(img.Id) != id || img.Status == nil || img.Status.Value() != "active" || img.Size == nil || *img.Size <= 0 {
		t.Errorf("GlanceShowImage: %+v", img)
	}
	_, err = tn.ims.GlanceShowImage(&imsmodel.GlanceShowImageRequest{ImageId: "6f1d0c2e-0000-0000-0000-000000000000"})
	wantErr(t, err, 404)
}

func TestImageAndFlavorFilters(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	linux := imsmodel.GetListImagesRequestOsTypeEnum().LINUX
	resp, err := tn.ims.ListImages(&imsmodel.ListImagesRequest{OsType: &linux, Limit: ptr(int32(1))})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	if resp.Images == nil || len(*resp.Images) != 1 || (*resp.Images)[0].OsType.Value() != "Linux" {
		t.Fatalf("ListImages __os_type=Linux limit=1: %+v", resp.Images)
	}
	first := (*resp.Images)[0].Id
	next, err := tn.ims.ListImages(&imsmodel.ListImagesRequest{OsType: &linux, Marker: &first})
	if err != nil {
		t.Fatalf("ListImages with a marker: %v", err)
	}
	for _, im := range *next.Images {
		if im.Id == first {
			t.Errorf("the marker's image is on the next page")
		}
	}
	private := imsmodel.GetListImagesRequestVisibilityEnum().PRIVATE
	if r, err := tn.ims.ListImages(&imsmodel.ListImagesRequest{Visibility: &private}); err != nil || len(*r.Images) != 0 {
		t.Errorf("visibility=private: %v %v", r, err)
	}
	_, err = tn.ims.ListImages(&imsmodel.ListImagesRequest{MinDisk: ptr(int32(10))})
	wantErr(t, err, 400, "Ecs.0005")

	fl, err := tn.ecs.ListFlavors(&model.ListFlavorsRequest{FlavorId: ptr("t6.tiny.1")})
	if err != nil {
		t.Fatalf("ListFlavors: %v", err)
	}
	if fl.Flavors == nil || len(*fl.Flavors) != 1 {
		t.Fatalf("ListFlavors flavor_id: %+v", fl.Flavors)
	}
	f := (*fl.Flavors)[0]
	if len(f.Links) == 0 || f.OsExtraSpecs == nil || str(f.OsExtraSpecs.Ecsperformancetype) != "normal" {
		t.Errorf("flavor %+v", f)
	}
	none, err := tn.ecs.ListFlavors(&model.ListFlavorsRequest{AvailabilityZone: ptr("no-such-az")})
	if err != nil || len(*none.Flavors) != 0 {
		t.Errorf("availability_zone of no zone: %v %v", none, err)
	}
}
